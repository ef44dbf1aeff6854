"""A campaign from the console's "send" to its results page showing every delivery, on the local stack.

Starts its own local stack (`python -m infra.local.run`: moto server, the API, the SQS workers polled as
deployed; free ports, temporary state, always stopped) and, in the example tenant coffee-chain:

  * untimed set-up: mail settings (a sender verified with moto's SES, no weekly cap, no quiet hours), an
    e-mail template, `--recipients` customers with an e-mail consent and a tag of this run (POST
    /v1/customers), a segment of that tag, and a tenant admin invited, joined and signed in (MFA enrolled);
  * the bare calls of the fan-out bench (bench/campaign_fanout.py, baseline A), against the same moto
    server in the same run: the same number of mail messages sent with a bare boto3 `send_message_batch`
    loop, 10 per call, to a queue of its own; and baseline A + SES: those sends plus one bare SES
    `send_email` per message (the least the mail worker must call), both timed;
  * timed: the console's new-campaign form posted (send now, 10 % control group), then the campaign's
    page (GET /console/campaigns/{id}, what a reload or the page's htmx polling shows) read every 0.25 s
    until its results section says every message is processed: delivered = messages queued. Split into:
    the form post, until the fan-out ended (status sent), when every message was processed (the moment the
    read that first showed it was asked), and the last page (the results computed: one purchase-log Query
    per recipient and one customer read per recipient sent to).

Figures: seconds from the send to the complete results page, the ratio to baseline A and to A + SES, and
the recipients and control group shown. The local workers poll their queues with 1 s long polls and run one
batch at a time per queue, as `make run` does; the browser's htmx polls every 2 s (the page itself is read
every 0.25 s here, so the figure is the stack's, not the polling interval's).

Run: .venv/bin/python -m bench.campaign_results [--recipients 1000]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import requests

from bench.console_pages import person
from chalicelib.domain import campaigns as rules
from tests.e2e.conftest import LocalStack

TENANT = "coffee-chain"
SENDER = "news@zerno.example"
HOLDOUT_BPS = 1000
POLL = 0.25
TIMEOUT = 900.0


def setup(stack: LocalStack, admin: str, run: str, n: int) -> tuple[str, list[str]]:
    """Mail settings, a template, n customers of this run's tag and their segment: (segment id, customer ids)."""
    r = stack.request("PUT", "/v1/mail-settings", admin, json={
        "email_from": SENDER, "weekly_cap": 0, "quiet_hours": {"start": "00:00", "end": "00:00"}})
    assert r.status_code == 200, r.text
    r = stack.request("POST", "/v1/templates", admin, json={
        "id": f"bench-{run}", "name": "Bench letter", "channel": "email", "subject": "Hello {{ first_name }}",
        "body": "Hello {{ first_name }}! Balance {{ balance }}. Unsubscribe: {{ unsubscribe_url }}"})
    assert r.status_code == 201, r.text
    ids: list[str] = []
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {admin}"
        for i in range(n):
            r = session.post(f"{stack.url}/v1/customers", timeout=30, json={
                "phone": f"+7918{int(run, 16) % 1000:03d}{i:04d}", "email": f"b{run}.{i}@example.com",
                "first_name": f"Bench{i}", "tags": [f"bench-{run}"],
                "consents": [{"kind": "email", "granted": True, "source": "site", "text_version": "2026-09"}]})
            assert r.status_code == 201, r.text
            ids.append(r.json()["customer_id"])
    r = stack.request("POST", "/v1/segments", admin, json={"name": f"Bench {run}",
                                                           "filter": {"tags_any": [f"bench-{run}"]}})
    assert r.status_code == 201, r.text
    return str(r.json()["segment_id"]), ids


def bare_calls(stack: LocalStack, n: int, run: str) -> tuple[float, float]:
    """Baseline A (n messages, bare send_message_batch, 10 per call) and A + one bare SES send per message."""
    endpoint = f"http://127.0.0.1:{stack.moto_port}"
    kw: dict[str, Any] = {"region_name": "eu-central-1", "endpoint_url": endpoint,
                          "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    sqs, ses = boto3.client("sqs", **kw), boto3.client("ses", **kw)

    def message(i: int) -> str:
        return json.dumps({"v": 1, "tenant_id": TENANT, "scope": TENANT, "customer_id": f"c{i}", "channel": "email",
                           "template_id": f"bench-{run}", "source": {"kind": "campaign", "id": "base",
                                                                      "occasion": "base"},
                           "dedup_key": f"campaign:base:c{i}", "coupon_code": None, "extra": {}},
                          separators=(",", ":"))

    url = sqs.create_queue(QueueName=f"bench-baseline-{run}")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "0", "MessageBody": message(0)}])  # warm-up
    bodies = [message(i) for i in range(n)]
    t0 = time.perf_counter()
    for i in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": b}
                                                      for j, b in enumerate(bodies[i:i + 10])])
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(n):
        ses.send_email(Source=SENDER, Destination={"ToAddresses": [f"bare{i}@example.com"]},
                       Message={"Subject": {"Data": "Hello"}, "Body": {"Text": {"Data": f"Hello {i}"}}})
    ses_s = time.perf_counter() - t0
    return bare, bare + ses_s


def number(text: str, ident: str) -> int | None:
    found = re.search(rf'<dd id="{ident}">([^<]*)</dd>', text)
    return int(re.sub(r"\D", "", found.group(1)) or 0) if found else None


def send_and_wait(stack: LocalStack, headers: dict[str, str], segment_id: str, template_id: str,
                  campaign_id: str) -> dict[str, Any]:
    """Post the console's form (send now) and read the campaign's page until its results show every delivery."""
    cookie = {"Cookie": headers["Cookie"]}
    with requests.Session() as session:
        session.headers["Accept-Language"] = "en"  # the page's labels, parsed below, in English
        form = session.get(f"{stack.url}/console/campaigns/new", headers=cookie, timeout=30)
        assert form.status_code == 200, form.text[:500]
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf, "no csrf field"
        data = {"csrf": csrf.group(1), "name": "Bench campaign", "id": campaign_id, "segment_id": segment_id,
                "channel": "email", "template_id": template_id, "coupon_campaign_id": "", "when": "now",
                "send_at": "", "holdout_pct": str(HOLDOUT_BPS / 100), "attribution_days": "7", "do": "create"}
        page_url = f"{stack.url}/console/campaigns/{campaign_id}"
        t0 = time.perf_counter()
        posted = session.post(f"{stack.url}/console/campaigns", data=data, timeout=60, allow_redirects=False,
                              headers={**cookie, "Origin": stack.url})
        assert posted.status_code == 303, (posted.status_code, posted.text[:1000])
        post_s = time.perf_counter() - t0
        fanned_s = delivered_s = None
        polls = 0
        while True:
            asked = time.perf_counter()
            page = session.get(page_url, headers=cookie, timeout=60)
            answered = time.perf_counter()
            polls += 1
            assert page.status_code == 200, page.text[:500]
            queued, sent = number(page.text, "camp-queued"), number(page.text, "camp-delivered")
            if fanned_s is None and "Status: Sent" in page.text:
                fanned_s = answered - t0
            if delivered_s is None and queued and sent == queued:
                delivered_s = asked - t0  # every message was processed when this read was asked
            if queued and number(page.text, "res-delivered") == queued:
                return {"post_s": post_s, "fanned_s": fanned_s, "delivered_s": delivered_s, "total_s": answered - t0,
                        "last_page_s": answered - asked, "polls": polls, "queued": queued,
                        "control": number(page.text, "camp-control"), "text": page.text}
            if answered - t0 > TIMEOUT:
                raise RuntimeError(f"not delivered after {TIMEOUT:.0f} s: {queued} queued, {sent} delivered")
            time.sleep(POLL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign_results", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1000, help="customers in the segment")
    args = parser.parse_args(argv)
    n, run = args.recipients, uuid.uuid4().hex[:6]
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="bench-campaign-")) / "state")
    try:
        stack.start()
        admin = stack.key("tenant_admin", TENANT)["secret"]
        t0 = time.perf_counter()
        segment_id, ids = setup(stack, admin, run, n)
        setup_s = time.perf_counter() - t0
        headers = person(stack, admin, f"bench.campaigns.{run}@console.example", "tenant_admin")
        campaign_id = f"bench-{run}"
        control = sum(rules.in_control_group(campaign_id, c, HOLDOUT_BPS) for c in ids)
        bare_s, bare_ses_s = bare_calls(stack, n - control, run)
        got = send_and_wait(stack, headers, segment_id, f"bench-{run}", campaign_id)
    finally:
        stack.stop()
    assert got["queued"] == n - control and got["control"] == control, (got["queued"], got["control"], control)
    members = re.search(r'<tr><th scope="row">Members</th><td class="num">([^<]*)</td><td class="num">([^<]*)</td>',
                        got["text"])
    assert members and (members.group(1), members.group(2)) == (f"{n - control:,}", f"{control:,}"), members
    total = got["total_s"]
    print(f"recipients in the segment      {n}  (set-up through the API, untimed: {setup_s:.1f} s)")
    print(f"sent to / control group        {got['queued']} / {got['control']}  (shown on the results page)")
    print(f"baseline A: bare batch sends   {bare_s:.2f} s  ({got['queued']} messages, 10 per call)")
    print(f"baseline A + bare SES sends    {bare_ses_s:.2f} s  (+ one send_email per message)")
    print(f"console form post (303)        {got['post_s']:.2f} s")
    print(f"until the fan-out ended        {got['fanned_s']:.2f} s")
    print(f"every message processed by     {got['delivered_s']:.2f} s  (the read that showed it was asked then)")
    print(f"send -> complete results page  {total:.2f} s  ({got['polls']} page reads; the last took "
          f"{got['last_page_s']:.2f} s)")
    print(f"ratio to baseline A            {total / bare_s:.1f}x")
    print(f"ratio to baseline A + SES      {total / bare_ses_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
