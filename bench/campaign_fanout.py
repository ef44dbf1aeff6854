"""Campaign fan-out: a 10,000-recipient campaign through the jobs worker, against a bare send_message_batch loop.

In-process moto with the local stack's transaction shim and SQS send fix (as `make run` does).
One run, in order:

  1. baseline A: the same number of mail messages (the real message shape)
     sent with a bare boto3 `send_message_batch` loop, 10 per call, to a queue of its own;
  1b. baseline B, everything the fan-out must send, bare: the same index pages
     (16 shards, pages of the walk's size), the same recipient rows with
     BatchWriteItem (25 per call; deleted again, untimed) and the same batches;
  2. the campaign: created through the service, then the jobs worker fed from
     the jobs queue until it is empty: it walks the segment (16 index shards),
     draws the control group (holdout 0 here, so every member is a recipient),
     records the recipients and queues the messages in batches of 10.

Figures: SQS send calls made by the fan-out per recipient (goal: about 1/10),
seconds for each, and the ratios fan-out / A (the issue's goal: <= 1.3x) and
fan-out / B. On moto, a query of a GSI filters the whole table, so the
segment walk's reads weigh far more than on DynamoDB: B is the figure that
isolates what the fan-out's own code adds.

Run: .venv/bin/python -m bench.campaign_fanout [--recipients 10000]
"""

from __future__ import annotations

import argparse
import io
import json
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
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()
    n = args.recipients

    with mock_aws():
        from chalicelib.domain.customers import empty_stats, shard_of
        from chalicelib.domain.ids import new_id
        from chalicelib.observability import logger
        from chalicelib.schemas.campaigns import CampaignCreate
        from chalicelib.schemas.mail import MailSettings
        from chalicelib.schemas.segments import SegmentIn
        from chalicelib.schemas.templates import TemplateIn
        from chalicelib.schemas.tenancy import AgencyCreate, TenantCreate
        from chalicelib.services.marketing import campaigns, mail_settings, segments, templates
        from chalicelib.services.tenancy import tenancy
        from chalicelib.settings import settings
        from chalicelib.storage import queues
        from chalicelib.storage.customers import CUSTOMER_SK, customer_pk, list_pk
        from chalicelib.storage.tables import LoyaltyRecord
        from chalicelib.workers import jobs
        from infra.local.moto_patches import install_sqs_send_fix, install_transaction_shim
        from infra.local.resources import create_resources

        install_transaction_shim()
        install_sqs_send_fix()
        create_resources(stage="bench")
        logger.registered_handler.setStream(io.StringIO())
        tenancy.create_agency(AgencyCreate(agency_id="bench-agency", name="Bench"), "bench")
        tenancy.provision_tenant("bench-agency", TenantCreate.model_validate_json(
            '{"tenant_id": "bench", "name": "Bench", "program": {"id": "main", "name": "Main",'
            ' "earning": {"rate_bps": 500}}, "stores": [{"id": "s1", "name": "Store 1"}]}'), "bench")
        templates.create("bench", TemplateIn(id="promo", name="Promo", channel="sms", body="Hi {{ first_name }}"),
                         "bench")
        # No quiet hours: an SMS campaign created at night would otherwise wait for the morning.
        mail_settings.put("bench", MailSettings.model_validate({"quiet_hours": {"start": "00:00", "end": "00:00"}}))
        segment = segments.create("bench", SegmentIn.model_validate({"name": "All", "filter": {}}), "bench")
        at = datetime.now(UTC)
        ids = [new_id() for _ in range(n)]
        with LoyaltyRecord.batch_write() as batch:
            for cid in ids:
                batch.save(LoyaltyRecord(customer_pk("bench", cid), CUSTOMER_SK, kind="customer", version=1, at=at,
                                         doc={"stats": empty_stats(), "status": "active", "profile": {"tags": []},
                                              "consents": {}, "referral": {}},
                                         gsi1pk=list_pk("bench", shard_of(cid)), gsi1sk=cid))
        sqs = boto3.client("sqs", region_name=settings.region)
        mail_url = sqs.get_queue_url(QueueName=settings.mail_queue)["QueueUrl"]
        jobs_url = sqs.get_queue_url(QueueName=settings.jobs_queue)["QueueUrl"]

        def message(cid: str) -> dict:
            return {"v": 1, "tenant_id": "bench", "scope": "bench", "customer_id": cid, "channel": "sms",
                    "template_id": "promo", "source": {"kind": "campaign", "id": "base", "occasion": "base"},
                    "dedup_key": f"campaign:base:{cid}", "coupon_code": None, "extra": {}}

        base_url = sqs.create_queue(QueueName="bench-baseline")["QueueUrl"]
        # warm-up (untimed): connections and parsers
        sqs.send_message_batch(QueueUrl=base_url, Entries=[{"Id": "0", "MessageBody": json.dumps(message("w"))}])

        # 1. baseline: bare send_message_batch, 10 per call
        bodies = [json.dumps(message(cid), separators=(",", ":")) for cid in ids]
        t0 = time.perf_counter()
        for i in range(0, n, 10):
            sqs.send_message_batch(QueueUrl=base_url, Entries=[{"Id": str(j), "MessageBody": b}
                                                               for j, b in enumerate(bodies[i:i + 10])])
        bare_s = time.perf_counter() - t0

        # 1b. baseline of everything the fan-out must send: the same index pages read bare (16 shards, pages of
        # the walk's size), the same recipient rows written with BatchWriteItem, the same message batches.
        ddb = boto3.client("dynamodb", region_name=settings.region)
        full_url = sqs.create_queue(QueueName="bench-baseline-full")["QueueUrl"]
        at_s = at.isoformat()
        t0 = time.perf_counter()
        walked: list[str] = []
        for shard in range(16):
            kwargs: dict = {"TableName": settings.loyalty_table, "IndexName": "gsi1", "Limit": campaigns.SCAN,
                            "KeyConditionExpression": "gsi1pk = :p",
                            "ExpressionAttributeValues": {":p": {"S": list_pk("bench", shard)}}}
            while True:
                page = ddb.query(**kwargs)
                walked += [item["pk"]["S"].rsplit("#", 1)[1] for item in page["Items"]]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for i in range(0, len(walked), 25):
            ddb.batch_write_item(RequestItems={settings.loyalty_table: [
                {"PutRequest": {"Item": {"pk": {"S": "bench#mail-campaign#bare"}, "sk": {"S": f"r#{cid}"},
                                         "kind": {"S": "recipient"}, "doc": {"M": {"group": {"S": "target"}}},
                                         "at": {"S": at_s}}}} for cid in walked[i:i + 25]]})
        full_bodies = [json.dumps(message(cid), separators=(",", ":")) for cid in walked]
        for i in range(0, len(full_bodies), 10):
            sqs.send_message_batch(QueueUrl=full_url, Entries=[{"Id": str(j), "MessageBody": b}
                                                               for j, b in enumerate(full_bodies[i:i + 10])])
        full_s = time.perf_counter() - t0
        assert len(walked) == n, len(walked)
        for i in range(0, len(walked), 25):  # untimed: the campaign's reads must see the table the baseline saw
            ddb.batch_write_item(RequestItems={settings.loyalty_table: [
                {"DeleteRequest": {"Key": {"pk": {"S": "bench#mail-campaign#bare"}, "sk": {"S": f"r#{cid}"}}}}
                for cid in walked[i:i + 25]]})

        # 2. the campaign through the service and the jobs worker
        calls = 0
        real_batch = queues.send_batch

        def counted(queue: str, messages: list[dict]) -> int:
            nonlocal calls
            made = real_batch(queue, messages)
            calls += made
            return made

        queues.send_batch = counted  # type: ignore[assignment]
        real_stdout, sys.stdout = sys.stdout, io.StringIO()
        try:
            t0 = time.perf_counter()
            campaigns.create("bench", CampaignCreate.model_validate({
                "id": "big", "name": "Big", "segment_id": segment.segment_id, "channel": "sms",
                "template_id": "promo", "holdout_bps": 0}), "bench")
            runs = 0
            while True:
                got = sqs.receive_message(QueueUrl=jobs_url, MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    break
                for m in got:
                    sqs.delete_message(QueueUrl=jobs_url, ReceiptHandle=m["ReceiptHandle"])
                    assert jobs.handle_records([{"messageId": m["MessageId"], "body": m["Body"]}]) == {
                        "batchItemFailures": []}
                    runs += 1
            fan_s = time.perf_counter() - t0
        finally:
            sys.stdout = real_stdout
        state = campaigns.get("bench", "big")
        assert state.status == "sent" and state.counts.queued == n, state
        queued = int(sqs.get_queue_attributes(QueueUrl=mail_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"])
        assert queued == n, queued

        print(f"recipients                     {n}")
        print(f"fan-out SQS send calls         {calls}  ({calls / n:.3f} per recipient; goal about 0.1)")
        print(f"jobs worker runs               {runs}")
        print(f"baseline bare batch loop       {bare_s:.2f} s")
        print(f"baseline bare reads+writes+sends {full_s:.2f} s")
        print(f"campaign fan-out               {fan_s:.2f} s")
        print(f"ratio fan-out / bare sends     {fan_s / bare_s:.2f}x  (goal <= 1.3x)")
        print(f"ratio fan-out / bare all calls {fan_s / full_s:.2f}x")


if __name__ == "__main__":
    main()
