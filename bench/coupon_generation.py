"""Unique coupon code generation: 100,000 codes through the jobs worker, against the bare writes of the same items.

In-process moto with the local stack's transaction shim installed (as `make
run` does; without it moto copies the whole table on every transaction and
this measures moto, see bench/moto_growth.py). One run measures, in order:

  1. baseline A: plain BatchWriteItem of code items of the same shape (25 per
     call, no conditions: what a generator that may overwrite would send);
  2. baseline B: the job's own request shape sent bare with boto3: one
     TransactWriteItems per 99 codes (each put only if absent) plus the
     campaign put guarded by its version;
  3. the job: `POST`-equivalent campaign creation through the service, then
     the jobs worker (`chalicelib.workers.jobs.handle_records`) fed from the
     SQS queue until it is empty, with its per-message time budget.

Figures are codes per second and ratios against the baselines, plus the
longest single job message (it must stay near the budget, far below the
worker's Lambda timeout) and a check that exactly `--codes` distinct codes
exist.

Run: .venv/bin/python -m bench.coupon_generation [--codes 100000] [--baseline 20000]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from datetime import UTC, datetime

os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "eu-central-1",
                   "STAGE": "bench"})
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3
from moto import mock_aws


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=20_000, help="codes written by each baseline")
    args = parser.parse_args()

    with mock_aws():
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from chalicelib.domain.coupons import generate_code
        from chalicelib.observability import logger
        from chalicelib.schemas.coupons import Campaign, CampaignCreate
        from chalicelib.schemas.tenancy import AgencyCreate, TenantCreate
        from chalicelib.services.program import coupons
        from chalicelib.services.tenancy import tenancy
        from chalicelib.settings import settings
        from chalicelib.storage import coupons as store
        from chalicelib.workers import jobs
        from infra.local.moto_patches import install_transaction_shim
        from infra.local.resources import create_resources

        install_transaction_shim()
        create_resources(stage="bench")
        logger.registered_handler.setStream(io.StringIO())
        tenancy.create_agency(AgencyCreate(agency_id="bench-agency", name="Bench"), "bench")
        tenancy.provision_tenant("bench-agency", TenantCreate.model_validate_json(
            '{"tenant_id": "bench", "name": "Bench", "program": {"id": "main", "name": "Main",'
            ' "earning": {"rate_bps": 500}}, "stores": [{"id": "s1", "name": "Store 1"}]}'), "bench")
        ddb = boto3.client("dynamodb", region_name=settings.region)
        sqs = boto3.client("sqs", region_name=settings.region)
        table = settings.loyalty_table
        queue = sqs.get_queue_url(QueueName=settings.jobs_queue)["QueueUrl"]
        at = datetime.now(UTC)

        def items(tenant_id: str, campaign_id: str, n: int) -> list[dict]:
            return [store.code_record(tenant_id, generate_code(), campaign_id, at).serialize() for _ in range(n)]

        def drain() -> list[float]:
            """Feed the jobs queue to the worker, one message per call; seconds per message."""
            per_message: list[float] = []
            while True:
                messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    return per_message
                for m in messages:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
                    m0 = time.perf_counter()
                    result = jobs.handle_records([{"messageId": m["MessageId"], "body": m["Body"]}])
                    per_message.append(time.perf_counter() - m0)
                    assert result == {"batchItemFailures": []}, result

        def unique(campaign_id: str, count: int) -> CampaignCreate:
            return CampaignCreate.model_validate({
                "id": campaign_id, "name": "Flyer drop", "program_id": "main", "mode": "unique", "count": count,
                "effect": {"kind": "bonus_points", "value": 100}}, strict=False)

        # warm-up: every code path once (imports, connections, moto's parsers), untimed
        real_stdout = sys.stdout
        sys.stdout = io.StringIO()
        try:
            coupons.create("bench", unique("warm-up", 2 * coupons.BATCH), "bench")
            drain()
        finally:
            sys.stdout = real_stdout
        warm = items("bench-w", "warm", 25)
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}} for it in warm]})

        # 1. baseline A: BatchWriteItem, no conditions
        batch_items = items("bench-a", "base", args.baseline)
        t0 = time.perf_counter()
        for i in range(0, len(batch_items), 25):
            ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}} for it in batch_items[i:i + 25]]})
        batch_s = time.perf_counter() - t0

        # 2. baseline B: the job's transactions, bare
        tx_items = items("bench-b", "base", args.baseline)
        campaign = Campaign.model_validate({
            "id": "base", "name": "Base", "program_id": "main", "mode": "unique", "count": args.baseline,
            "effect": {"kind": "bonus_points", "value": 100}, "limits": {}, "refund_policy": "release",
            "status": "active", "generation": "generating", "generated": 0, "created_at": at.isoformat()},
            strict=False)
        campaign_item = store.campaign_record("bench-b", campaign, 0, at).serialize()
        ddb.put_item(TableName=table, Item=campaign_item)
        t0 = time.perf_counter()
        for version, i in enumerate(range(0, len(tx_items), coupons.BATCH)):
            head = {**campaign_item, "version": {"N": str(version + 1)}}
            writes = [{"Put": {"TableName": table, "Item": head, "ConditionExpression": "#v = :v",
                               "ExpressionAttributeNames": {"#v": "version"},
                               "ExpressionAttributeValues": {":v": {"N": str(version)}}}}]
            writes += [{"Put": {"TableName": table, "Item": it, "ConditionExpression": "attribute_not_exists(pk)"}}
                       for it in tx_items[i:i + coupons.BATCH]]
            ddb.transact_write_items(TransactItems=writes)
        tx_s = time.perf_counter() - t0

        # 3. the job, through the service and the worker
        sys.stdout = io.StringIO()
        try:
            t0 = time.perf_counter()
            status, _ = coupons.create("bench", unique("big", args.codes), "bench")
            assert status == 202
            per_message = drain()
            job_s = time.perf_counter() - t0
        finally:
            sys.stdout = real_stdout

        loaded = store.get_campaign("bench", "big")
        assert loaded is not None
        done = loaded.doc
        moto_table = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region].get_table(table)
        prefix = "bench#coupon#"
        stored = sum(1 for partition in moto_table.items.values() for item in partition.values()
                     if item.hash_key.value.startswith(prefix)
                     and item.attrs["doc"].value["campaign_id"].value == "big")

    job_rate = args.codes / job_s
    batch_rate = args.baseline / batch_s
    tx_rate = args.baseline / tx_s
    print("shim installed: True")
    print(f"baseline A, BatchWriteItem x25, no conditions: {args.baseline} codes in {batch_s:.1f} s, "
          f"{batch_rate:.0f} codes/s")
    print(f"baseline B, bare TransactWriteItems of 99 conditional puts + versioned campaign: {args.baseline} codes in "
          f"{tx_s:.1f} s, {tx_rate:.0f} codes/s")
    print(f"job: {args.codes} codes in {job_s:.1f} s, {job_rate:.0f} codes/s over {len(per_message)} job messages "
          f"(budget {coupons.BUDGET_SECONDS:.0f} s each); longest message {max(per_message):.2f} s")
    print(f"ratio job / A: {job_rate / batch_rate:.2f}x codes/s; job / B: {job_rate / tx_rate:.2f}x codes/s")
    print(f"campaign: generation={done.generation.value} generated={done.generated}; code items stored: {stored}")


if __name__ == "__main__":
    main()
