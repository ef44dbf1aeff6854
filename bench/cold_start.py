"""Cold start: the time to import `app.py` in a fresh interpreter versus a bare `import boto3` in the same run.

A Lambda cold start pays the import of the handler module before the first
request; boto3 is the floor (every function imports it). Each sample is a new
interpreter (`python -X importtime` is not used: it slows what it measures),
alternating the two commands so machine noise hits both sides alike. Figures:
median and p90 wall time of each, the ratio app / boto3 (goal <= 1.8x), and
the heaviest imports `app` pulls in, from one `-X importtime` run.

A cheap import could just move the cost to the first request, so the bench
also times what a cold API container pays before its first answer: in a
fresh interpreter, `import app` plus one POS purchase (authorizer, route,
pydantic, services, PynamoDB, a DynamoDB transaction) through
`chalice.test.Client` against a moto server in this process, set up with a
tenant and a card beforehand (`--first-requests 0` skips it). `--app-dir`
times another checkout's `app.py` (e.g. `git archive` of an older commit into
a directory) against the same moto state, for before/after figures.

Run: .venv/bin/python -m bench.cold_start [--samples 15] [--first-requests 7] [--app-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
       "AWS_DEFAULT_REGION": "eu-central-1", "STAGE": "bench", "PYTHONDONTWRITEBYTECODE": "0"}
COMMANDS = {"boto3": "import boto3", "app": "import app"}


# One cold container's first request, in a fresh interpreter; prints {"import": s, "request": s} last.
FIRST_REQUEST = """
import json, sys, time
started = time.perf_counter()
import app
imported = time.perf_counter()
from chalice.test import Client  # the harness: not part of the function, not timed
client = Client(app.app)
sent = time.perf_counter()
body = {"receipt_id": sys.argv[1], "card_number": sys.argv[2], "store_id": "msk-01", "total": 35000,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 35000}]}
r = client.http.post("/v1/purchases", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + sys.argv[3]})
done = time.perf_counter()
assert r.status_code == 200, r.body
print(json.dumps({"import": imported - started, "request": done - sent}))
"""


def sample(code: str, cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, env=ENV, check=True)
    return time.perf_counter() - started


def heaviest(cwd: Path = ROOT, limit: int = 12) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest direct imports of `app`, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=cwd, env=ENV,
                          capture_output=True, text=True, check=True)
    rows: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        depth = len(name) - len(name.lstrip())  # one space before a top-level import, two more per level
        if depth == 3:
            rows.append((int(cumulative), name.strip()))
        elif depth == 1:  # a module's imports are listed just before it
            if name.strip() == "app":
                break
            rows = []
    return sorted(rows, reverse=True)[:limit]


def first_request_setup() -> tuple[dict[str, str], Any, str, str]:
    """A moto server in this process with the tables, a tenant and a card; (child env, server, card, POS key)."""
    from infra.local.moto_server import LocalMotoServer

    server = LocalMotoServer(port=0)
    server.start()
    env = {**ENV, "AWS_ENDPOINT_URL": server.url}
    os.environ.update(env)  # chalicelib reads its settings at import: set them first
    from chalicelib.domain.roles import Role
    from chalicelib.observability import logger
    from chalicelib.schemas.pos import CardIssue
    from chalicelib.schemas.tenancy import AgencyCreate, TenantCreate
    from chalicelib.services.pos import cards
    from chalicelib.services.tenancy import tenancy
    from infra.local.resources import create_resources

    logger.setLevel("WARNING")
    create_resources(stage=ENV["STAGE"])
    tenancy.create_agency(AgencyCreate(agency_id="bench-agency", name="Bench"), "bench")
    provisioned = tenancy.provision_tenant("bench-agency", TenantCreate.model_validate_json(
        '{"tenant_id": "bench", "name": "Bench", "program": {"id": "main", "name": "Main",'
        ' "earning": {"rate_bps": 500}}, "stores": [{"id": "msk-01", "name": "One", "region": "moscow"}]}'), "bench")
    pos_key = next(k.secret for k in provisioned.keys if k.role is Role.POS)
    _, card = cards.issue("bench", CardIssue(program_id="main"), "bench")
    return env, server, card.number, pos_key


def first_requests(samples: int, app_dir: Path) -> dict[str, list[float]]:
    """Wall time of `import app` and of the first purchase after it, each sample a fresh interpreter."""
    env, server, card, pos_key = first_request_setup()
    out: dict[str, list[float]] = {"import": [], "request": [], "total": []}
    try:
        for i in range(samples + 1):  # the first one warms the .pyc files and moto (untimed)
            done = subprocess.run([sys.executable, "-c", FIRST_REQUEST, f"cold-{i}", card, pos_key], cwd=app_dir,
                                  env=env, capture_output=True, text=True, check=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            if i:
                out["import"].append(figures["import"])
                out["request"].append(figures["request"])
                out["total"].append(figures["import"] + figures["request"])
    finally:
        server.stop()
    return out


def _median_p90(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.9))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--first-requests", type=int, default=7, help="samples of import + first purchase; 0 skips")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app.py is timed")
    args = parser.parse_args()
    app_dir = args.app_dir.resolve()
    for code in COMMANDS.values():  # warm the page cache and the .pyc files (untimed)
        sample(code, app_dir)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.samples):
        for name, code in COMMANDS.items():
            times[name].append(sample(code, app_dir))
    for name, values in times.items():
        median, p90 = _median_p90(values)
        print(f"{name:<6} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms")
    ratio = statistics.median(times["app"]) / statistics.median(times["boto3"])
    print(f"ratio app / boto3 (median): {ratio:.2f}x  (goal <= 1.8x)")
    print("heaviest direct imports of `app` (cumulative, one -X importtime run):")
    for micros, name in heaviest(app_dir):
        print(f"  {micros / 1000:7.1f} ms  {name}")
    if args.first_requests > 0:
        print(f"first request of a cold container ({args.first_requests} fresh interpreters; moto server):")
        for name, values in first_requests(args.first_requests, app_dir).items():
            median, p90 = _median_p90(values)
            label = {"import": "import app", "request": "first purchase", "total": "import + first purchase"}[name]
            print(f"  {label:<24} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
