"""The member site's home and card pages: bytes on a first load (compressed) and server time against its service calls.

Starts its own local stack (free ports, temporary state, always stopped), signs a new member of the example
tenant coffee-chain up through the pages exactly as a phone does (the phone, the SMS code read from the local
outbox, the sign-up form), makes a few purchases on the new card through the POS API (so the card shows points,
pending points and a history), then for the member home (`/m/coffee-chain`) and the card page
(`/m/coffee-chain/card`, the barcode, QR code, figures and tier):

  * first-load weight: the HTML plus every stylesheet it references (console.css, member.css and the tenant's
    brand.css), each gzip-compressed at level 6 (what API Gateway / CloudFront compression sends); goal <= 60 KB;
    the page must work without JavaScript, so it must reference no script at all (checked);
  * server time against the service calls it makes: each page answers `Server-Timing: page;dur=..,
    services;dur=..` (the page wrapper times the whole page and, separately, every call into a service through
    the page modules' lazy service modules: the member session check, the branding, the card summary); the bench
    takes the medians over `--rounds` requests of the same run and their ratio.

Run: .venv/bin/python -m bench.member_home [--rounds 30] [--purchases 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import statistics
import sys
import tempfile
import time
from html import unescape
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import LocalStack

TENANT = "coffee-chain"
STORE = "msk-tverskaya"
BUDGET = 60 * 1024
CODE = re.compile(r"\b(\d{6})\b")
PAGES = ("/m/coffee-chain", "/m/coffee-chain/card")


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    if not found:
        raise RuntimeError(f"no hidden {name} in the page")
    return unescape(found.group(1))


def _sms_code(stack: LocalStack, phone: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        messages = requests.get(f"http://127.0.0.1:{stack.moto_port}/_local/outbox.json", params={"to": phone},
                                timeout=10).json()["messages"]
        sms = [m for m in messages if m["kind"] == "sms"]
        found = CODE.search(sms[0]["body"]) if sms else None
        if found:
            return found.group(1)
        time.sleep(0.5)
    raise RuntimeError(f"no SMS code to {phone}")


def sign_up(stack: LocalStack, session: requests.Session, phone: str) -> str:
    """A new member through the pages: the member cookie (sent by hand: a `__Host-` cookie is Secure-only)."""
    site = f"{stack.url}/m/{TENANT}"
    form = session.get(f"{site}/sign-in?lang=en", timeout=30).text
    code_page = session.post(f"{site}/sign-in", data={"form_token": _hidden(form, "form_token"), "phone": phone,
                                                      "action": "send", "next": ""}, timeout=30).text
    sign_up_form = session.post(f"{site}/sign-in", data={
        "form_token": _hidden(code_page, "form_token"), "phone": _hidden(code_page, "phone"),
        "verification_id": _hidden(code_page, "verification_id"), "code": _sms_code(stack, _hidden(code_page, "phone")),
        "action": "confirm", "next": ""}, timeout=30).text
    done = session.post(f"{site}/sign-up", data={
        "form_token": _hidden(sign_up_form, "form_token"), "proof": _hidden(sign_up_form, "proof"),
        "first_name": "Bench", "consent_personal_data": "on", "card": "virtual"}, timeout=30, allow_redirects=False)
    if done.status_code != 303:
        raise RuntimeError(f"sign-up answered {done.status_code}: {done.text[:300]}")
    return done.headers["Set-Cookie"].split(";")[0]


def weight(session: requests.Session, stack: LocalStack, html: str, cookie: str) -> tuple[int, int, list[str]]:
    """(raw, gzip-compressed) bytes of the page and its stylesheets, and the stylesheets' paths."""
    if re.search(r"<script\b", html):
        raise RuntimeError("the member page references a script: it must work without JavaScript")
    parts = [html.encode()]
    sheets = [unescape(p) for p in re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)]
    for path in sheets:
        r = session.get(f"{stack.url}{path}", headers={"Cookie": cookie}, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code}")
        parts.append(r.content)
    return sum(len(p) for p in parts), sum(len(gzip.compress(p, 6)) for p in parts), sheets


def measure(stack: LocalStack, rounds: int, purchases: int) -> list[dict[str, Any]]:
    phone = "+7916" + "".join(random.choice("0123456789") for _ in range(7))
    rows = []
    with requests.Session() as session:
        cookie = sign_up(stack, session, phone)
        admin = stack.key("tenant_admin", TENANT)["secret"]
        pos = stack.key("pos", TENANT)["secret"]
        number = stack.request("GET", "/v1/customers", admin, params={"phone": phone}).json()["cards"][0]
        for i in range(purchases):
            total = 40000 + 1000 * i
            r = stack.request("POST", "/v1/purchases", pos, json={
                "receipt_id": f"bench-member-{number}-{i}", "card_number": number, "store_id": STORE,
                "total": total, "items": [{"sku": "latte", "category": "coffee", "amount": total}]})
            if r.status_code != 200:
                raise RuntimeError(f"purchase {i}: {r.status_code} {r.text[:200]}")
        headers = {"Cookie": cookie, "Accept-Language": "ru"}
        for path in PAGES:
            first = session.get(f"{stack.url}{path}", headers=headers, timeout=30, allow_redirects=False)
            if first.status_code != 200 or number not in first.text:
                raise RuntimeError(f"{path}: {first.status_code}, card shown: {number in first.text}")
            raw, packed, sheets = weight(session, stack, first.text, cookie)
            client_ms, page_ms, service_ms = [], [], []
            for _ in range(rounds):
                started = time.perf_counter()
                r = session.get(f"{stack.url}{path}", headers=headers, timeout=30, allow_redirects=False)
                client_ms.append((time.perf_counter() - started) * 1000)
                metrics = {name: float(value) for name, value in
                           re.findall(r"(\w+);dur=([0-9.]+)", r.headers.get("Server-Timing", ""))}
                page_ms.append(metrics["page"])
                service_ms.append(metrics["services"])
            rows.append({"page": path, "html": len(first.content), "raw": raw, "compressed": packed,
                         "sheets": sheets, "client_ms": statistics.median(client_ms),
                         "page_ms": statistics.median(page_ms), "service_ms": statistics.median(service_ms)})
    return rows


def render(rows: list[dict[str, Any]], rounds: int, purchases: int) -> str:
    lines = [f"member signed up through the pages, {purchases} purchases on the card, {rounds} rounds per page",
             "", "| page | first load (HTML / HTML+CSS raw / gzip) | scripts | server: page / its service calls | "
             "ratio | over HTTP |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["page_ms"] / r["service_ms"] if r["service_ms"] else float("nan")
        flag = "" if r["compressed"] <= BUDGET else " (over budget)"
        lines.append(f"| {r['page']} | {r['html'] / 1024:.1f} / {r['raw'] / 1024:.1f} / {r['compressed'] / 1024:.1f} KB"
                     f"{flag} | none | {r['page_ms']:.1f} / {r['service_ms']:.1f} ms | {ratio:.2f}x "
                     f"| {r['client_ms']:.1f} ms |")
    lines.append("")
    lines.append(f"heaviest first load {max(r['compressed'] for r in rows) / 1024:.1f} KB gzip (goal <= 60 KB), no "
                 "JavaScript on either page")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.member_home", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--purchases", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="bench-member-")) / "state")
    try:
        stack.start()
        rows = measure(stack, args.rounds, args.purchases)
    finally:
        stack.stop()
    print(render(rows, args.rounds, args.purchases))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
