"""`make bench`: run every benchmark in bench/ and write their output into bench/RESULTS.md.

Each benchmark runs as its own process with the command listed in `BENCHES`
(the same command the sections of RESULTS.md quote), one after the other so
they never share the 2 cores. Their output, the command, the duration and the
machine go into the generated section at the end of RESULTS.md, between the
`GENERATED_BEGIN` / `GENERATED_END` markers; the hand-written sections above
it (what each figure means, and the history of runs) are left alone. A
benchmark that fails is recorded as failed with the end of its output, and the
others still run; the exit status is 1 if any failed. With `--only`, the other
benchmarks' blocks of the previous run are kept, each saying when it ran.

Run: .venv/bin/python -m bench.run_all [--only NAME ...] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
GENERATED_BEGIN = "<!-- make bench: generated below, do not edit -->"
GENERATED_END = "<!-- make bench: end -->"


@dataclass(frozen=True)
class Bench:
    module: str
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    """Arguments for `--quick` (a smoke run of every benchmark in minutes, not figures to quote)."""

    def command(self, quick: bool) -> list[str]:
        return [sys.executable, "-m", f"bench.{self.module}", *(self.quick if quick else self.args)]


BENCHES: tuple[Bench, ...] = (
    Bench("api_overhead", (), ("--requests", "200")),
    Bench("purchase_path", (), ("--receipts", "200", "--large", "2000")),
    Bench("moto_growth", ("--small", "100", "--large", "20000", "--tx", "200"),
          ("--small", "100", "--large", "2000", "--tx", "20")),
    Bench("coupon_generation", (), ("--codes", "5000", "--baseline", "2000")),
    Bench("campaign_fanout", (), ("--recipients", "1000")),
    Bench("campaign_results", (), ("--recipients", "100")),
    Bench("report_export", (), ("--sizes", "2000", "20000", "--untraced")),
    Bench("cold_start", (), ("--samples", "5", "--first-requests", "2")),
    Bench("package_size", ()),
    Bench("load_test", ("--clients", "20", "--duration", "60", "--tenants", "3"),
          ("--clients", "4", "--duration", "5", "--tenants", "3", "--cards", "2", "--baseline", "50")),
    Bench("sign_in", (), ("--rounds", "1", "--mfa-users", "2", "--support-users", "2", "--reads", "20")),
    Bench("console_pages", (), ("--rounds", "3")),
    Bench("member_home", (), ("--rounds", "3", "--purchases", "2")),
)
"""Every module of bench/ but this one; tests/unit/test_bench_runner.py fails when one is missing."""


def machine() -> str:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return (f"{os.cpu_count()} cores{f' ({cpu})' if cpu else ''}, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}")


def run(bench: Bench, quick: bool) -> tuple[bool, float, str]:
    started = time.monotonic()
    done = subprocess.run(bench.command(quick), cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    output = done.stdout.strip() if done.returncode == 0 else (done.stdout + done.stderr).strip()[-3000:]
    return done.returncode == 0, seconds, output


def _blocks(text: str) -> tuple[str, dict[str, str]]:
    """The previous generated section's run line and its per-benchmark blocks (`### <module>: ...` to the next)."""
    if GENERATED_BEGIN not in text or GENERATED_END not in text:
        return "", {}
    body = text[text.index(GENERATED_BEGIN) + len(GENERATED_BEGIN):text.index(GENERATED_END)]
    when = next((line for line in body.splitlines() if line[:2] == "20" and " UTC" in line), "")
    blocks: dict[str, str] = {}
    for chunk in body.split("\n### ")[1:]:
        blocks[chunk.split(":", 1)[0].strip()] = "### " + chunk.rstrip("\n") + "\n"
    return when, blocks


def section(results: list[tuple[Bench, bool, float, str]], quick: bool, when: datetime, previous: str = "") -> str:
    """The generated section; benchmarks not run this time keep their block from `previous` (an `--only` run)."""
    ran = {bench.module for bench, *_ in results}
    old_when, old_blocks = _blocks(previous)
    lines = [GENERATED_BEGIN, "", "## Latest `make bench` run", "",
             f"{when:%Y-%m-%d %H:%M} UTC on {machine()}"
             f"{'; `--quick` (smoke sizes: not figures to quote)' if quick else ''}.", ""]
    by_module = {bench.module: (bench, ok, seconds, output) for bench, ok, seconds, output in results}
    for module in [b.module for b in BENCHES]:
        if module not in ran:
            if module in old_blocks:
                block = old_blocks[module]
                if "\nRun " not in block:
                    heading, _, rest = block.partition("\n")
                    block = f"{heading}\n\nRun {old_when.rstrip('.')} (an earlier run, kept).\n{rest}"
                lines += [block.rstrip("\n"), ""]
            continue
        bench, ok, seconds, output = by_module[module]
        command = " ".join([".venv/bin/python", "-m", f"bench.{bench.module}",
                            *(bench.quick if quick else bench.args)])
        lines += [f"### {bench.module}: {'ok' if ok else 'FAILED'} in {seconds:,.0f} s", "",
                  f"Run {when:%Y-%m-%d %H:%M} UTC{' (--quick)' if quick else ''}.", "",
                  f"`{command}`", "", "```", output or "(no output)", "```", ""]
    lines.append(GENERATED_END)
    return "\n".join(lines) + "\n"


def replace_section(text: str, generated: str) -> str:
    """RESULTS.md with its generated section replaced (or appended the first time)."""
    if GENERATED_BEGIN in text and GENERATED_END in text:
        head = text[:text.index(GENERATED_BEGIN)]
        tail = text[text.index(GENERATED_END) + len(GENERATED_END):].lstrip("\n")
        return head + generated + tail
    return text.rstrip("\n") + "\n\n" + generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[b.module for b in BENCHES], help="run only these")
    parser.add_argument("--quick", action="store_true", help="smoke sizes (minutes in all)")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b.module in args.only]
    started = datetime.now(UTC)
    results = []
    for bench in chosen:
        print(f"== bench.{bench.module}", flush=True)
        ok, seconds, output = run(bench, args.quick)
        print(output, f"\n-- {'ok' if ok else 'FAILED'} in {seconds:,.0f} s", flush=True)
        results.append((bench, ok, seconds, output))
    text = RESULTS.read_text()
    RESULTS.write_text(replace_section(text, section(results, args.quick, started,
                                                     text if args.only else "")))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
