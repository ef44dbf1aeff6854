"""The console's pages: bytes on a first load (compressed) and server time against the API read of the same data.

Starts its own local stack (free ports, temporary state, always stopped), invites a tenant admin of the
example tenant coffee-chain and an agency member (links from the local outbox), signs both in (enrolling
their authenticators), and then for every GET page of the console without a path parameter that the
person's role opens:

  * first-load weight: the HTML plus every stylesheet and script it references, each gzip-compressed
    (level 6, what the API Gateway / CloudFront compression sends); goal <= 150 KB per page;
  * server time against the service calls it makes: every page answers `Server-Timing: page;dur=..,
    services;dur=..` (the page wrapper times the whole page and, separately, each call into a service:
    the session check and every call through the page module's lazy service modules); the bench takes the
    medians over `--rounds` requests and their ratio; goal <= 1.3x. For a second view, the page's API twin
    (the JSON route of the same data for the same person, with the same session) is timed interleaved,
    over HTTP from the client.

Run: .venv/bin/python -m bench.console_pages [--rounds 30]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from chalicelib.console import routes as _pages  # noqa: F401  (declares every page)
from chalicelib.console.pages import pages
from chalicelib.domain.identity import TOTP_STEP_SECONDS, totp_code
from tests.e2e.conftest import LocalStack

TENANT = "coffee-chain"
PASSWORD = "Bench-Console-42"
TWINS = {
    "/console": "/v1/auth/session",
    "/console/dashboard": "/v1/dashboard",
    "/console/programs": "/v1/programs",
    "/console/stores": "/v1/stores",
    "/console/integrations/keys": "/v1/keys",
    "/console/integrations/webhooks": "/v1/webhooks",
    "/console/integrations/team": "/v1/members",
    "/console/integrations/audit": "/v1/audit",
    "/console/agency/tenants": "/v1/agency/tenants",
    "/console/agency/members": "/v1/members",
    "/console/cards": "/v1/card-series",
}
"""A page and the API read of the same service for the same person (the JSON the page is rendered from)."""
PAGE_BUDGET = 150 * 1024
RATIO_GOAL = 1.3


def _outbox_token(stack: LocalStack, to: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        messages = requests.get(f"http://127.0.0.1:{stack.moto_port}/_local/outbox.json", params={"to": to},
                                timeout=10).json()["messages"]
        found = re.search(r"/console/invitation\?token=(\S+)", messages[0]["body"]) if messages else None
        if found:
            return found.group(1)
        time.sleep(0.5)
    raise RuntimeError(f"no invitation to {to}")


def _code(secret: str) -> str:
    while TOTP_STEP_SECONDS - time.time() % TOTP_STEP_SECONDS < 4:
        time.sleep(0.5)
    return totp_code(secret, time.time())


def person(stack: LocalStack, key: str, email: str, role: str) -> dict[str, str]:
    """Invite, accept, sign in with enrolment: the session's headers (token and cookie)."""
    r = stack.request("POST", "/v1/invitations", key, json={"email": email, "role": role})
    assert r.status_code == 201, r.text
    token = _outbox_token(stack, email)
    assert stack.request("POST", "/v1/auth/invitations/accept",
                         json={"token": token, "password": PASSWORD}).status_code == 201
    step = stack.request("POST", "/v1/auth/sign-in", json={"email": email, "password": PASSWORD}).json()
    r = stack.request("POST", "/v1/auth/sign-in/code", json={"sign_in_id": step["sign_in_id"],
                                                             "code": _code(step["secret"])})
    assert r.status_code == 200, r.text
    cookie = r.headers["Set-Cookie"].split(";")[0]
    return {"Authorization": f"Session {r.json()['session']['csrf_token']}", "Cookie": cookie}


def weight(session: requests.Session, stack: LocalStack, html: str) -> tuple[int, int]:
    """(raw, gzip-compressed) bytes of the page and its stylesheets and scripts."""
    parts = [html.encode()]
    for path in re.findall(r'(?:href|src)="(/console/static/[^"]+)"', html):
        parts.append(session.get(f"{stack.url}{path}", timeout=30).content)
    return sum(len(p) for p in parts), sum(len(gzip.compress(p, 6)) for p in parts)


def timed(session: requests.Session, url: str, headers: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Client-side milliseconds and the answer's Server-Timing metrics."""
    started = time.perf_counter()
    r = session.get(url, headers=headers, timeout=30, allow_redirects=False)
    elapsed = (time.perf_counter() - started) * 1000
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    metrics = {name.strip(): float(value) for name, value in
               re.findall(r"(\w+);dur=([0-9.]+)", r.headers.get("Server-Timing", ""))}
    return elapsed, metrics


def measure(stack: LocalStack, rounds: int) -> list[dict[str, Any]]:
    admin_key = stack.key("tenant_admin", TENANT)["secret"]
    agency_key = stack.key("agency")["secret"]
    people = {"tenant_admin": person(stack, admin_key, "bench.admin@console.example", "tenant_admin"),
              "agency": person(stack, agency_key, "bench.agency@console.example", "agency")}
    rows = []
    with requests.Session() as session:
        for spec in pages():
            if spec.method != "GET" or spec.public or "{" in spec.path:
                continue
            for role, headers in people.items():
                if role not in {r.value for r in spec.roles}:
                    continue
                cookie_only = {"Cookie": headers["Cookie"]}
                first = session.get(f"{stack.url}{spec.path}", headers=cookie_only, timeout=30)
                assert first.status_code == 200, (spec.path, first.status_code)
                raw, packed = weight(session, stack, first.text)
                twin = TWINS.get(spec.path)
                page_ms, server_ms, service_ms, twin_ms = [], [], [], []
                for _ in range(rounds):
                    elapsed, metrics = timed(session, f"{stack.url}{spec.path}", cookie_only)
                    page_ms.append(elapsed)
                    server_ms.append(metrics["page"])
                    service_ms.append(metrics["services"])
                    if twin:
                        twin_ms.append(timed(session, f"{stack.url}{twin}", headers)[0])
                rows.append({"page": spec.path, "role": role, "raw": raw, "compressed": packed,
                             "page_ms": statistics.median(page_ms), "server_ms": statistics.median(server_ms),
                             "service_ms": statistics.median(service_ms),
                             "twin": twin, "twin_ms": statistics.median(twin_ms) if twin_ms else None})
                break
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| page | role | first load (raw / gzip) | server: page / its service calls | ratio | over HTTP: page / "
             "API twin |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["server_ms"] / r["service_ms"] if r["service_ms"] else float("nan")
        twin = f"{r['page_ms']:.1f} / {r['twin_ms']:.1f} ms ({r['twin']})" if r["twin_ms"] else f"{r['page_ms']:.1f} ms"
        flag = "" if r["compressed"] <= PAGE_BUDGET else " (over budget)"
        lines.append(f"| {r['page']} | {r['role']} | {r['raw'] / 1024:.1f} / {r['compressed'] / 1024:.1f} KB{flag} "
                     f"| {r['server_ms']:.1f} / {r['service_ms']:.1f} ms | {ratio:.2f}x | {twin} |")
    heaviest = max(r["compressed"] for r in rows) / 1024
    ratios = [r["server_ms"] / r["service_ms"] for r in rows if r["service_ms"]]
    lines.append("")
    lines.append(f"heaviest first load {heaviest:.1f} KB gzip (budget 150 KB); server time / service calls: median "
                 f"{statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x (goal {RATIO_GOAL}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console_pages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="bench-console-")) / "state")
    try:
        stack.start()
        rows = measure(stack, args.rounds)
    finally:
        stack.stop()
    print(render(rows))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
