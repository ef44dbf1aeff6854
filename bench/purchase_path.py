"""The purchase hot path: DynamoDB calls per purchase, overhead against the bare calls, growth.

Three measurements on in-process moto, in one run:
  1. calls: the DynamoDB operations one warm `POST /v1/purchases` makes, split
     into the authorizer's (a separate Lambda when deployed) and the handler's;
  2. ratio: `POST /v1/purchases` through `chalice.test.Client` versus the bare
     boto3 calls a purchase must make (GetItem of the card + the same
     TransactWriteItems: receipt put, versioned card put, ledger entry put),
     interleaved over N receipts each;
  3. growth: purchase time with the table holding --small vs --large items.
The local stack's transaction shim (infra/local/moto_patches.py) is installed
for 2 and 3, as `make run` does; without it moto copies every table a
transaction touches and 3 measures moto, not our code (see bench/moto_growth.py).

Run: .venv/bin/python -m bench.purchase_path [--receipts 2000] [--small 100] [--large 20000]
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import statistics
import sys
import time
from collections import Counter

os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "eu-central-1",
                   "STAGE": "bench"})
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3
from moto import mock_aws


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--receipts", type=int, default=2000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--no-shim", action="store_true")
    args = parser.parse_args()

    with mock_aws():
        from chalice.test import Client

        from app import app
        from chalicelib.domain.roles import Role
        from chalicelib.observability import logger
        from chalicelib.schemas.tenancy import AgencyCreate, TenantCreate
        from chalicelib.services.tenancy import tenancy
        from chalicelib.settings import settings
        from chalicelib.storage.tables import LoyaltyRecord
        from infra.local.gateway import install_gateway_responses
        from infra.local.moto_patches import install_transaction_shim
        from infra.local.resources import create_resources

        if not args.no_shim:
            install_transaction_shim()
        create_resources(stage="bench")
        install_gateway_responses()
        logger.registered_handler.setStream(io.StringIO())
        tenancy.create_agency(AgencyCreate(agency_id="bench-agency", name="Bench"), "bench")
        provisioned = tenancy.provision_tenant("bench-agency", TenantCreate.model_validate_json(
            '{"tenant_id": "bench", "name": "Bench", "program": {"id": "main", "name": "Main",'
            ' "earning": {"rate_bps": 500}}, "stores": [{"id": "s1", "name": "Store 1"}]}'), "bench")
        pos_key = next(k.secret for k in provisioned.keys if k.role is Role.POS)
        ddb = boto3.client("dynamodb", region_name=settings.region)
        table = settings.loyalty_table
        headers = {"Authorization": f"Bearer {pos_key}"}
        real_stdout = sys.stdout
        sys.stdout = io.StringIO()  # EMF metrics lines
        try:
            with Client(app) as client:
                def new_card() -> str:
                    r = client.http.post("/v1/cards", headers={**headers, "Content-Type": "application/json"},
                                         body=b'{"program_id": "main"}')
                    assert r.status_code == 201, r.body
                    import json

                    return json.loads(r.body)["number"]

                counter = {"n": 0}

                def purchase(card: str) -> None:
                    counter["n"] += 1
                    body = (f'{{"receipt_id": "p{counter["n"]}", "card_number": "{card}", "store_id": "s1", '
                            '"total": 10000, "items": [{"sku": "latte", "category": "coffee", "quantity": 1, '
                            '"amount": 10000}]}').encode()
                    r = client.http.post("/v1/purchases", headers={**headers, "Content-Type": "application/json"},
                                         body=body)
                    assert r.status_code == 200, r.body

                captured: dict[str, dict] = {}

                def capture(params: dict, event_name: str, **_: object) -> None:
                    name = event_name.rsplit(".", 1)[-1]
                    if name == "GetItem" and params["TableName"] == settings.api_keys_table:
                        name = "GetItem:key"
                    captured[name] = copy.deepcopy(params)

                bare_state = {"version": 0}

                def bare(card_pk: str, with_key_read: bool = False) -> None:
                    """The purchase's own GetItem and TransactWriteItems, replayed on a twin card."""
                    if with_key_read:
                        ddb.get_item(**captured["GetItem:key"])
                    counter["n"] += 1
                    n = counter["n"]
                    get = copy.deepcopy(captured["GetItem"])
                    get["Key"]["pk"] = {"S": card_pk}
                    ddb.get_item(**get)
                    tx = copy.deepcopy(captured["TransactWriteItems"])
                    tx.pop("ClientRequestToken", None)
                    for item in tx["TransactItems"]:
                        if "Update" in item:  # the dashboard counter's ADD: sent as the purchase sent it
                            continue
                        put = item["Put"]
                        sk = put["Item"]["sk"]["S"]
                        if sk == "receipt":
                            put["Item"]["pk"] = {"S": f"bench#receipt#bare{n}"}
                        elif sk == "card":
                            put["Item"]["pk"] = {"S": card_pk}
                            put["Item"]["version"] = {"N": str(bare_state["version"] + 1)}
                            for name, value in put.get("ExpressionAttributeValues", {}).items():
                                if "N" in value:
                                    put["ExpressionAttributeValues"][name] = {"N": str(bare_state["version"])}
                        else:
                            put["Item"]["pk"] = {"S": card_pk}
                            put["Item"]["sk"] = {"S": f"{sk}#bare{n}"}
                    ddb.transact_write_items(**tx)
                    bare_state["version"] += 1

                # 1. calls per purchase, warm
                card = new_card()
                for _ in range(20):
                    purchase(card)
                calls: list[tuple[str, str]] = []
                phase = {"name": "handler"}

                def record(event_name: str, **_: object) -> None:
                    calls.append((phase["name"], event_name.rsplit(".", 1)[-1]))

                import chalicelib.api.auth as auth_module

                original_authorize = auth_module.authorize

                def traced_authorize(req):
                    phase["name"] = "authorizer"
                    try:
                        return original_authorize(req)
                    finally:
                        phase["name"] = "handler"

                auth_module.authorize = traced_authorize
                clients = {id(m._get_connection().connection.client): m._get_connection().connection.client
                           for m in (LoyaltyRecord,)}
                from chalicelib.storage.tables import ApiKeyRecord, DirectoryRecord

                for m in (ApiKeyRecord, DirectoryRecord):
                    c = m._get_connection().connection.client
                    clients[id(c)] = c
                from chalicelib.storage.transactions import connection

                clients[id(connection().client)] = connection().client
                for c in clients.values():
                    c.meta.events.register("before-call.dynamodb", record)
                    c.meta.events.register("provide-client-params.dynamodb.GetItem", capture)
                    c.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", capture)
                purchase(card)
                for c in clients.values():
                    c.meta.events.unregister("before-call.dynamodb", record)
                    c.meta.events.unregister("provide-client-params.dynamodb.GetItem", capture)
                    c.meta.events.unregister("provide-client-params.dynamodb.TransactWriteItems", capture)
                auth_module.authorize = original_authorize
                per_purchase = Counter(calls)

                # 2. growth, first, on a fresh table: fill it to --small, then --large items;
                #    time purchases on a fresh card each time
                def count_items() -> int:
                    total, start = 0, None
                    while True:
                        extra = {"ExclusiveStartKey": start} if start else {}
                        page = ddb.scan(TableName=table, Select="COUNT", **extra)
                        total += page["Count"]
                        start = page.get("LastEvaluatedKey")
                        if not start:
                            return total

                def fill_to(target: int) -> int:
                    count = count_items()
                    batch = []
                    i = count
                    while i < target:
                        batch.append({"PutRequest": {"Item": {"pk": {"S": f"bench#filler#{i}"}, "sk": {"S": "x"},
                                                              "kind": {"S": "filler"}, "at": {"S": "x"},
                                                              "doc": {"M": {"pad": {"S": "y" * 200}}}}}})
                        i += 1
                        if len(batch) == 25:
                            ddb.batch_write_item(RequestItems={table: batch})
                            batch = []
                    if batch:
                        ddb.batch_write_item(RequestItems={table: batch})
                    return count_items()

                growth: dict[int, float] = {}
                for target in (args.small, args.large):
                    size = fill_to(target)
                    fresh = new_card()
                    for _ in range(20):
                        purchase(fresh)
                    samples = []
                    for _ in range(100):
                        t0 = time.perf_counter()
                        purchase(fresh)
                        samples.append(time.perf_counter() - t0)
                    growth[size] = median_ms(samples)
                # 3. ratio against the bare calls, interleaved (on the filled table)
                bare_pk = "bench#card#bare"
                twin = ddb.get_item(TableName=table, Key={"pk": {"S": f"bench#card#{card}"}, "sk": {"S": "card"}})
                ddb.put_item(TableName=table, Item={**twin["Item"], "pk": {"S": bare_pk}, "version": {"N": "0"}})
                api_times: list[float] = []
                service_times: list[float] = []
                import chalicelib.services.pos.purchases as purchase_service

                original_purchase = purchase_service.purchase

                def timed_purchase(*a, **kw):
                    t0 = time.perf_counter()
                    try:
                        return original_purchase(*a, **kw)
                    finally:
                        service_times.append(time.perf_counter() - t0)

                purchase_service.purchase = timed_purchase  # routes call purchases.purchase at request time
                bare_times: list[float] = []
                bare_key_times: list[float] = []
                rounds = 5
                per_round = max(args.receipts // rounds, 1)
                for _ in range(rounds):
                    for _ in range(per_round):
                        t0 = time.perf_counter()
                        bare(bare_pk)
                        bare_times.append(time.perf_counter() - t0)
                    for _ in range(per_round):
                        t0 = time.perf_counter()
                        bare(bare_pk, with_key_read=True)
                        bare_key_times.append(time.perf_counter() - t0)
                    for _ in range(per_round):
                        t0 = time.perf_counter()
                        purchase(card)
                        api_times.append(time.perf_counter() - t0)

        finally:
            sys.stdout = real_stdout

    print(f"shim installed: {not args.no_shim}")
    print("DynamoDB calls in one warm POST /v1/purchases:")
    for (phase_name, op), n in sorted(per_purchase.items()):
        print(f"  {phase_name:<10} {op:<20} {n}")
    b, bk, a = median_ms(bare_times), median_ms(bare_key_times), median_ms(api_times)
    print(f"over {len(api_times)} receipts each (medians): POST /v1/purchases {a:.2f} ms;")
    print(f"  vs the handler's own GetItem + TransactWriteItems replayed bare {b:.2f} ms: ratio {a / b:.2f}x")
    print(f"  vs those plus the authorizer's key GetItem, replayed bare {bk:.2f} ms: ratio {a / bk:.2f}x")
    sv = median_ms(service_times[-len(api_times):])
    print(f"  the purchase service alone (the handler's work after the authorizer) {sv:.2f} ms: "
          f"ratio {sv / b:.2f}x to its own calls replayed bare")
    sizes = sorted(growth)
    print(f"growth: purchase median {growth[sizes[0]]:.2f} ms at {sizes[0]} items, {growth[sizes[1]]:.2f} ms at "
          f"{sizes[1]} items, ratio {growth[sizes[1]] / growth[sizes[0]]:.2f}x")


if __name__ == "__main__":
    main()
