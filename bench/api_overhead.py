"""What the API layer costs on top of the storage calls it must make.

Measures, on one in-process moto backend, in the same run:
  * baseline: the bare DynamoDB calls an authenticated read needs
    (GetItem of the API key + GetItem of the program), through boto3;
  * api: `GET /v1/programs/{id}` through `chalice.test.Client` (authorizer,
    routing, pydantic, middleware, logging, metrics, error handling);
and counts the DynamoDB calls per request with a botocore event hook.

Run: .venv/bin/python -m bench.api_overhead [--requests 2000]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections import Counter

os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "eu-central-1",
                   "STAGE": "bench", "POWERTOOLS_METRICS_DISABLED": "false"})
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3
from moto import mock_aws


def _timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    n = args.requests

    with mock_aws():
        from chalice.test import Client

        from app import app
        from chalicelib.domain.roles import Role
        from chalicelib.observability import logger
        from chalicelib.schemas.keys import KeyCreate
        from chalicelib.schemas.tenancy import AgencyCreate, TenantCreate
        from chalicelib.services.tenancy import keys as api_keys
        from chalicelib.services.tenancy import tenancy
        from chalicelib.services.tenancy.scopes import Scope
        from chalicelib.settings import settings
        from infra.local.gateway import install_gateway_responses
        from infra.local.resources import create_resources

        create_resources(stage="bench")
        install_gateway_responses()
        logger.registered_handler.setStream(io.StringIO())  # keep the access log off the terminal
        tenancy.create_agency(AgencyCreate(agency_id="bench-agency", name="Bench"), "bench")
        provisioned = tenancy.provision_tenant("bench-agency", TenantCreate.model_validate_json(
            '{"tenant_id": "bench", "name": "Bench", "program": {"id": "main", "name": "Main",'
            ' "earning": {"rate_bps": 500}}}'), "bench")
        pos_key = next(k.secret for k in provisioned.keys if k.role is Role.POS)
        api_keys.create(Scope.platform(), KeyCreate(role=Role.PLATFORM, name="bench"), "bench")

        ddb = boto3.client("dynamodb", region_name=settings.region)
        key_id = pos_key.split(".")[1]

        def bare() -> None:
            ddb.get_item(TableName=settings.api_keys_table, Key={"pk": {"S": "bench"}, "sk": {"S": key_id}},
                         ConsistentRead=True)
            ddb.get_item(TableName=settings.directory_table,
                         Key={"pk": {"S": "bench"}, "sk": {"S": "program#main"}}, ConsistentRead=True)

        calls: Counter[str] = Counter()

        with Client(app) as client:
            headers = {"Authorization": f"Bearer {pos_key}"}

            def api() -> None:
                r = client.http.get("/v1/programs/main", headers=headers)
                assert r.status_code == 200, r.body

            real_stdout = sys.stdout
            sys.stdout = io.StringIO()  # EMF metrics are printed; keep them off the figures' output
            try:
                for _ in range(50):  # warm both paths (imports, caches, connections)
                    bare()
                    api()
                from chalicelib.storage.tables import ApiKeyRecord, DirectoryRecord

                def count(*_a, **kw) -> None:
                    calls[kw.get("event_name", "?").split(".")[-1]] += 1

                for model in (ApiKeyRecord, DirectoryRecord):
                    model._get_connection().connection.client.meta.events.register("before-call.dynamodb", count)
                api()
                per_request = dict(calls)
                for model in (ApiKeyRecord, DirectoryRecord):
                    model._get_connection().connection.client.meta.events.unregister("before-call.dynamodb", count)
                base_times, api_times = [], []
                for _ in range(5):  # interleave rounds so drift hits both equally
                    base_times += _timed(bare, n // 5)
                    api_times += _timed(api, n // 5)
            finally:
                sys.stdout = real_stdout

    b, a = statistics.median(base_times) * 1000, statistics.median(api_times) * 1000
    b95 = statistics.quantiles(base_times, n=20)[18] * 1000
    a95 = statistics.quantiles(api_times, n=20)[18] * 1000
    print(f"requests per path: {n}")
    print(f"DynamoDB calls per GET /v1/programs/{{id}} (warm): {per_request}")
    print(f"baseline (bare GetItem x2): median {b:.2f} ms, p95 {b95:.2f} ms")
    print(f"api (test client, full stack): median {a:.2f} ms, p95 {a95:.2f} ms")
    print(f"ratio api/baseline: median {a / b:.2f}x, p95 {a95 / b95:.2f}x")


if __name__ == "__main__":
    main()
