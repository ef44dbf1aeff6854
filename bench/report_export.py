"""Ledger export: peak memory of the reports worker, and rows per second against a bare boto3 loop.

For each size (20,000 and 200,000 entries by default) the parent process
runs moto as a server (infra/local/moto_server.py, in this process, with the
local transaction shim) and every measurement runs in a fresh subprocess
talking to it over HTTP. Moto keeps every item and every uploaded byte in the
memory of the process it runs in; hosting it in the parent keeps that out of
the measured process, so a worker's peak is the worker's own.

The server has the local stack's query fix (infra/local/moto_patches.py
`install_query_fix`): unpatched, moto answers every Query by sorting and
walking the whole table, about a second per page at 100,000 items, and the
bench would measure that. A size is more days at the same density (2,000
entries a day, 250 per day and shard), so both sides make the same number of
Query calls (one per day and shard, pages of 1,000) on the same table and
the ratio compares the code paths.

  1. seed: a tenant with one program, 1 card per 50 entries, written with
     BatchWriteItem of exactly the items `storage.loyalty.add_entry` makes
     (so the by-day index `gsi2` is set);
  2. worker: a `ledger` report of the seeded days requested through the
     service, then the reports worker (`workers.reports.handle_records`) on
     its message; rows per second over the worker call, the row count checked;
  3. baseline: bare boto3 over the same index and days: Query every day x
     shard page by page, one CSV row per item, an S3 multipart upload in
     parts of the same size. No merge by time, no card lookups, no PynamoDB:
     the least any ledger export must do.

Both run under tracemalloc (started after imports and client creation; the
same handicap on both sides), which gives the peak Python allocation during
the export; each process's own peak resident memory (VmHWM) is printed too
(imports included).

Run: .venv/bin/python -m bench.report_export [--sizes 20000 200000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from typing import Any

TENANT = "bench"
PER_DAY = 2_000
"""Entries per day (250 per day and shard): a size is more days, not denser ones (see the docstring)."""
START = date(2026, 1, 1)
ENTRIES_PER_CARD = 50
PAGE = 1_000
"""Query page size, the worker's (storage.reports.ledger_day) and the baseline's alike."""


def days_for(entries: int) -> int:
    return max(1, entries // PER_DAY)


def _env(endpoint: str) -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "eu-central-1", "STAGE": "bench", "AWS_ENDPOINT_URL": endpoint,
                       "POWERTOOLS_LOG_LEVEL": "WARNING"})


# --- the child processes ------------------------------------------------------------

def seed(entries: int) -> dict[str, Any]:
    import boto3

    from chalicelib.domain.cards import CardKind, CardState, CardStatus, generate_number
    from chalicelib.domain.wallet import Wallet
    from chalicelib.schemas.pos import LedgerEntry
    from chalicelib.schemas.tenancy import AgencyCreate, TenantCreate
    from chalicelib.services.tenancy import tenancy
    from chalicelib.settings import settings
    from chalicelib.storage import loyalty
    from chalicelib.storage.tables import LoyaltyRecord
    from infra.local.resources import create_resources

    create_resources(stage="bench")
    tenancy.create_agency(AgencyCreate(agency_id="bench-agency", name="Bench"), "bench")
    tenancy.provision_tenant("bench-agency", TenantCreate.model_validate_json(
        '{"tenant_id": "bench", "name": "Bench", "program": {"id": "main", "name": "Main",'
        ' "earning": {"rate_bps": 500}}, "stores": [{"id": "s1", "name": "Store 1"}]}'), "bench")
    ddb = boto3.client("dynamodb", region_name=settings.region)

    class Collect:
        """Stands in for a transaction: keeps what add_entry would write."""

        def __init__(self) -> None:
            self.items: list[dict[str, Any]] = []

        def save(self, record: LoyaltyRecord, condition: Any = None) -> None:
            self.items.append(record.serialize())

    def flush(items: list[dict[str, Any]]) -> None:
        for i in range(0, len(items), 25):
            request = [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]
            while request:
                unprocessed = ddb.batch_write_item(RequestItems={settings.loyalty_table: request})
                request = unprocessed.get("UnprocessedItems", {}).get(settings.loyalty_table, [])

    started = time.perf_counter()
    base = datetime(START.year, START.month, START.day, tzinfo=UTC)
    spacing = timedelta(seconds=days_for(entries) * 86400 * 0.9 / entries)
    cards = [generate_number("7", 13) for _ in range(max(1, entries // ENTRIES_PER_CARD))]
    collect = Collect()
    for number in cards:
        card = CardState(number=number, program_id="main", kind=CardKind.VIRTUAL, status=CardStatus.ACTIVE,
                         wallet=Wallet(), issued_at=base)
        collect.items.append(LoyaltyRecord(loyalty.card_pk(TENANT, number), loyalty.CARD_SK, kind="card",
                                           doc=card.to_doc(), version=1, at=base).serialize())
    for i in range(entries):
        at = base + spacing * i
        entry = LedgerEntry(entry_id=f"e{i:07d}", type="accrual", points=10 + i % 90, balance_after=i,
                            at=at, receipt_id=f"r{i:07d}", store_id="s1", rule_version=1)
        loyalty.add_entry(collect, TENANT, cards[i % len(cards)], entry, 0)  # type: ignore[arg-type]
        if len(collect.items) >= 1000:
            flush(collect.items)
            collect.items = []
    flush(collect.items)
    return {"seconds": round(time.perf_counter() - started, 1), "cards": len(cards)}


def _measure(run: Any, trace: bool) -> dict[str, Any]:
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds}
    if trace:
        out["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    out["maxrss_mib"] = peak_rss_mib()
    return out


def peak_rss_mib() -> float:
    """This process's own peak resident memory (VmHWM), imports included.

    Not `ru_maxrss`: Linux carries it across exec from the parent's address
    space (subprocess forks with vfork), so every child reported the parent's
    peak, which here hosts moto and all 200,000 items (over 1 GB).
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(entries: int, trace: bool) -> dict[str, Any]:
    from chalicelib.domain.roles import Role
    from chalicelib.schemas.reports import ReportCreate
    from chalicelib.services.reporting.reports import service
    from chalicelib.storage import reports as store
    from chalicelib.storage.aws import client
    from chalicelib.workers import reports

    spec = ReportCreate.model_validate({"type": "ledger", "program_id": "main", "from": START.isoformat(),
                                        "to": (START + timedelta(days=days_for(entries))).isoformat()}, strict=False)
    _, report = service.create(TENANT, spec, "bench", Role.TENANT_ADMIN)
    client("s3")  # clients are made before measuring, as the baseline's are
    record = {"messageId": "m1", "body": json.dumps({"tenant_id": TENANT, "report_id": report.report_id})}

    def run() -> int:
        assert reports.handle_records([record]) == {"batchItemFailures": []}
        doc, _ = store.get(TENANT, report.report_id) or ({}, 0)
        assert doc.get("status") == "ready", doc
        return int(doc["rows"])

    return _measure(run, trace)


def baseline(entries: int, trace: bool) -> dict[str, Any]:
    import boto3

    from chalicelib.settings import settings
    from chalicelib.storage.reports import PART_SIZE

    ddb = boto3.client("dynamodb", region_name=settings.region)
    s3 = boto3.client("s3", region_name=settings.region)
    columns = ["at", "card_number", "entry_id", "type", "points", "balance_after", "receipt_id", "store_id"]

    def run() -> int:
        key = f"reports/{TENANT}/baseline.csv"
        upload_id = s3.create_multipart_upload(Bucket=settings.reports_bucket, Key=key,
                                               ServerSideEncryption="AES256")["UploadId"]
        parts: list[dict[str, Any]] = []
        buffer = bytearray()

        class Sink:
            def write(self, text: str) -> None:
                buffer.extend(text.encode("utf-8"))

        def send() -> None:
            number = len(parts) + 1
            etag = s3.upload_part(Bucket=settings.reports_bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                  Body=bytes(buffer))["ETag"]
            parts.append({"ETag": etag, "PartNumber": number})
            buffer.clear()

        writer = csv.writer(Sink())
        writer.writerow(columns)
        rows = 0
        for d in range(days_for(entries)):
            day = START + timedelta(days=d)
            for shard in range(8):
                kwargs: dict[str, Any] = {
                    "TableName": settings.loyalty_table, "IndexName": "gsi2",
                    "KeyConditionExpression": "gsi2pk = :p", "Limit": PAGE,
                    "ExpressionAttributeValues": {":p": {"S": f"{TENANT}#ledger#{day.isoformat()}#{shard}"}}}
                while True:
                    page = ddb.query(**kwargs)
                    for item in page["Items"]:
                        doc = item["doc"]["M"]
                        writer.writerow([doc["at"]["S"], item["gsi2sk"]["S"].rsplit("#", 1)[1],
                                         doc["entry_id"]["S"], doc["type"]["S"], doc["points"]["N"],
                                         doc["balance_after"]["N"], doc.get("receipt_id", {}).get("S", ""),
                                         doc.get("store_id", {}).get("S", "")])
                        rows += 1
                        if len(buffer) >= PART_SIZE:
                            send()
                    if "LastEvaluatedKey" not in page:
                        break
                    kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        send()
        s3.complete_multipart_upload(Bucket=settings.reports_bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
        return rows

    return _measure(run, trace)


def child(args: argparse.Namespace) -> None:
    _env(args.endpoint)
    if args.child == "seed":
        result = seed(args.entries)
    elif args.child == "worker":
        result = worker(args.entries, args.trace)
    else:
        result = baseline(args.entries, args.trace)
    print(json.dumps(result))


# --- the parent ---------------------------------------------------------------------

def _run_child(endpoint: str, what: str, entries: int = 0, trace: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.report_export", "--child", what, "--endpoint", endpoint,
           "--entries", str(entries)] + (["--trace"] if trace else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--child", choices=["seed", "worker", "baseline"])
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--entries", type=int, default=0)
    parser.add_argument("--trace", action="store_true", help="child: run under tracemalloc")
    parser.add_argument("--untraced", action="store_true",
                        help="time both sides without tracemalloc (no peak figure; tracemalloc slows the worker's "
                             "PynamoDB-heavy path more than the bare loop)")
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import io

    from infra.local.moto_server import LocalMotoServer

    _env("")
    server = LocalMotoServer(port=0)
    sys.stderr = io.StringIO() if not os.environ.get("BENCH_VERBOSE") else sys.stderr
    server.start()
    results: dict[int, dict[str, Any]] = {}
    try:
        for size in args.sizes:
            server.reset()
            seeded = _run_child(server.url, "seed", size)
            w = wt = _run_child(server.url, "worker", size, trace=not args.untraced)
            b = bt = _run_child(server.url, "baseline", size, trace=not args.untraced)
            assert w["rows"] == b["rows"] == size, (w["rows"], b["rows"], size)
            results[size] = {"seed": seeded, "worker": w, "baseline": b, "worker_trace": wt, "baseline_trace": bt}
            print(f"{size:>8} entries over {days_for(size)} days ({seeded['cards']} cards, seeded in "
                  f"{seeded['seconds']} s): "
                  f"worker {w['rows_per_second']:,.0f} rows/s, baseline {b['rows_per_second']:,.0f} rows/s, "
                  f"ratio {w['rows_per_second'] / b['rows_per_second']:.2f}x; "
                  f"peak (tracemalloc) worker {wt.get('peak_mib', 0):.1f} MiB, "
                  f"baseline {bt.get('peak_mib', 0):.1f} MiB; "
                  f"peak RSS worker {w['maxrss_mib']:.0f} MiB, baseline {b['maxrss_mib']:.0f} MiB", flush=True)
    finally:
        server.stop()
    if len(results) >= 2 and not args.untraced:
        small, large = min(results), max(results)
        print(f"peak memory {large} vs {small}: "
              f"{results[large]['worker_trace']['peak_mib'] / results[small]['worker_trace']['peak_mib']:.2f}x "
              f"(tracemalloc), {results[large]['worker']['maxrss_mib'] / results[small]['worker']['maxrss_mib']:.2f}x "
              f"(peak RSS)")


if __name__ == "__main__":
    main()
