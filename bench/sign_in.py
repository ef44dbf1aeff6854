"""Staff sign-in round trips against one authenticated API read, over HTTP on the local stack, in the same run.

Starts its own local stack (`python -m infra.local.run` in a subprocess, free loopback ports, state in a
temporary directory, always stopped) and, with the example tenant coffee-chain's admin key, invites
`--mfa-users` tenant admins and `--support-users` support operators, accepts each invitation with the link
from the local outbox, and enrols each admin's authenticator (their first sign-in, timed as `enrolment`).
Then, in `--rounds` rounds of one 30 s TOTP step each:

  * every admin signs in: the password step (`POST /v1/auth/sign-in`, answered `mfa`) and the code step
    (`POST /v1/auth/sign-in/code`, answered with the session cookie) are timed separately; their sum per
    sign-in is the full round trip (`sign-in (MFA)`). A TOTP code is accepted once per user and the local
    Cognito accepts only the current step's code, so each admin signs in once per round: the rounds are
    what makes repeated MFA sign-ins possible;
  * every support operator (no MFA: the password step answers with the session) signs in once
    (`sign-in (no MFA)`);
  * `--reads` reads are spread over the rounds, interleaved: `GET /v1/programs` with the tenant admin API
    key (`read (key)`) and the same read with a tenant admin's session (`read (session)`: the CSRF token
    header and the cookie).

All requests go through one keep-alive connection, headers set explicitly (the `__Host-` cookie is Secure, so
an http client would not send it by itself). Client-side work (computing codes, waiting for a fresh step) is
outside the timings.

The per-address sign-in limit (30 attempts per 15 min) counts every attempt from one client address, and on
the local stack every client is 127.0.0.1 (chalice's local server fixes the source address). So before each
sign-in, outside the timed calls, the bench deletes that address's attempt counter in the stack's DynamoDB;
each timed step still counts its attempt (the same conditional write as always).

Printed: median and p95 per kind, the ratios sign-in / read (key) and read (session) / read (key).

Run: .venv/bin/python -m bench.sign_in [--rounds 4] [--mfa-users 8] [--support-users 8] [--reads 200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import requests

from bench.load_test import percentile
from tests.e2e.conftest import LocalStack

TENANT = "coffee-chain"
PASSWORD = "Bench-Sign-In-42"
STEP = 30
LOCAL_ADDRESS = "127.0.0.1"
"""The source address of every request on the local stack (chalice.local.LambdaEventConverter.LOCAL_SOURCE_IP)."""
FRESH = 3.0
"""A code with fewer seconds left in its step than this is not sent: wait for the next step."""


class Client:
    """One keep-alive connection; each call given a `kind` has its wall time recorded under it."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.http = requests.Session()
        self.times: dict[str, list[float]] = defaultdict(list)

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None,
             kind: str | None = None, expect: int = 200) -> requests.Response:
        self.http.cookies.clear()  # never let the jar add a cookie: every header is explicit
        started = time.perf_counter()
        r = self.http.request(method, f"{self.stack.url}{path}", headers=headers or {}, json=body, timeout=30)
        elapsed = time.perf_counter() - started
        if r.status_code != expect:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        if kind:
            self.times[kind].append(elapsed)
        return r


class AddressLimit:
    """Deletes the local client address's sign-in attempt counter in the stack's DynamoDB (see the docstring)."""

    def __init__(self, stack: LocalStack) -> None:
        from infra.local.run import chalice_config, set_environment

        set_environment(chalice_config(), f"http://127.0.0.1:{stack.moto_port}")
        from chalicelib.domain.identity import LOCKOUT_WINDOW_SECONDS
        from chalicelib.storage.tables import IdentityRecord

        self.model, self.window = IdentityRecord, LOCKOUT_WINDOW_SECONDS

    def clear(self) -> None:
        self.model(f"limit#ip#{LOCAL_ADDRESS}", f"window#{int(time.time()) // self.window}").delete()


def session_headers(response: requests.Response) -> dict[str, str]:
    cookie = response.headers["Set-Cookie"].split(";")[0]
    return {"Authorization": f"Session {response.json()['session']['csrf_token']}", "Cookie": cookie}


def wait_for_fresh_step() -> float:
    """Sleep into a step with at least FRESH seconds left; the time to compute codes at."""
    left = STEP - time.time() % STEP
    if left < FRESH:
        time.sleep(left + 0.05)
    return time.time()


def invite_all(client: Client, admin_key: str, emails: list[tuple[str, str]]) -> None:
    """Invite (tenant admin key), then accept each with the link from the local outbox."""
    outbox = f"http://127.0.0.1:{client.stack.moto_port}/_local/outbox.json"
    key = {"Authorization": f"Bearer {admin_key}"}
    for email, role in emails:
        client.call("POST", "/v1/invitations", key, {"email": email, "role": role}, expect=201)
    for email, _ in emails:  # the jobs worker sends the e-mail: wait for it
        deadline = time.monotonic() + 60
        while not (found := requests.get(outbox, params={"to": email}, timeout=10).json()["messages"]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no invitation e-mail to {email} after 60 s")
            time.sleep(0.2)
        token = re.search(r"\?token=(\S+)", found[0]["body"])
        assert token, found[0]["body"]
        client.call("POST", "/v1/auth/invitations/accept", None, {"token": token.group(1), "password": PASSWORD},
                    expect=201)


def sign_in_with_code(client: Client, limit: AddressLimit, email: str, secret: str | None, used: set[str],
                      kinds: tuple[str, str]) -> tuple[requests.Response, str]:
    """Password step then code step, each timed under its kind; (the code step's answer, the secret)."""
    limit.clear()
    first = client.call("POST", "/v1/auth/sign-in", None, {"email": email, "password": PASSWORD}, kind=kinds[0])
    step = first.json()
    secret = step["secret"] if step["next"] == "mfa_setup" else secret
    assert step["next"] in ("mfa", "mfa_setup") and secret, step
    from chalicelib.domain.identity import totp_code

    at = wait_for_fresh_step()
    code = totp_code(secret, at)
    if code in used:  # this user's code of this step is spent: the next step's
        time.sleep(STEP - at % STEP + 0.05)
        at = time.time()
        code = totp_code(secret, at)
    used.add(code)
    limit.clear()
    done = client.call("POST", "/v1/auth/sign-in/code", None, {"sign_in_id": step["sign_in_id"], "code": code},
                       kind=kinds[1])
    assert done.json()["next"] == "done"
    return done, secret


def measure(stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    keys = stack.keys()
    admin_key = next(k["secret"] for k in keys if k["role"] == "tenant_admin" and k["tenant_id"] == TENANT)
    client = Client(stack)
    limit = AddressLimit(stack)
    admins = [f"admin-{i}@bench.example" for i in range(args.mfa_users)]
    support = [f"support-{i}@bench.example" for i in range(args.support_users)]
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    invite_all(client, admin_key, [(e, "tenant_admin") for e in admins] + [(e, "support") for e in support])
    mfa_secrets: dict[str, str] = {}
    used: dict[str, set[str]] = defaultdict(set)
    reader: dict[str, str] = {}
    for email in admins:  # the first sign-in enrols the authenticator
        done, mfa_secrets[email] = sign_in_with_code(client, limit, email, None, used[email],
                                                 ("enrolment: password step", "enrolment: code step"))
        reader = reader or session_headers(done)
    setup = time.monotonic() - started
    key_headers = {"Authorization": f"Bearer {admin_key}"}
    for _ in range(10):  # warm both reads
        client.call("GET", "/v1/programs", key_headers)
        client.call("GET", "/v1/programs", reader)
    reads_per_round = [args.reads // args.rounds + (1 if r < args.reads % args.rounds else 0)
                       for r in range(args.rounds)]
    full: list[float] = []
    for round_reads in reads_per_round:
        step = int(wait_for_fresh_step()) // STEP
        for email in admins:
            sign_in_with_code(client, limit, email, mfa_secrets[email], used[email],
                              ("password step (MFA)", "code step"))
            full.append(client.times["password step (MFA)"][-1] + client.times["code step"][-1])
        for i in range(max(round_reads, len(support))):
            if i < len(support):
                limit.clear()
                r = client.call("POST", "/v1/auth/sign-in", None, {"email": support[i], "password": PASSWORD},
                                kind="sign-in (no MFA)")
                assert r.json()["next"] == "done" and r.headers["Set-Cookie"].startswith("__Host-lp_session=")
            if i < round_reads:
                client.call("GET", "/v1/programs", key_headers, kind="read (key)")
                client.call("GET", "/v1/programs", reader, kind="read (session)")
        if int(time.time()) // STEP == step:  # the next round needs the next 30 s step (fresh codes)
            time.sleep(STEP - time.time() % STEP + 0.05)
    times = dict(client.times)
    times["sign-in (MFA): password + code"] = full
    return {"setup_seconds": setup, "times": times, "rounds": args.rounds, "mfa_users": len(admins),
            "support_users": len(support), "load": (load_before, os.getloadavg()[0])}


def figures(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "median": statistics.median(values) * 1000, "p95": percentile(values, 95) * 1000}


ORDER = ("read (key)", "read (session)", "password step (MFA)", "code step", "sign-in (MFA): password + code",
         "sign-in (no MFA)", "enrolment: password step", "enrolment: code step")


def render(report: dict[str, Any]) -> str:
    stats = {kind: figures(values) for kind, values in report["times"].items() if values}
    lines = [f"users: {report['mfa_users']} tenant admins (MFA), {report['support_users']} support operators "
             f"(no MFA); {report['rounds']} round(s) of one TOTP step; set-up {report['setup_seconds']:.1f} s; "
             f"load average {report['load'][0]:.1f} before, {report['load'][1]:.1f} after",
             f"{'kind':<32} {'n':>4} {'median ms':>10} {'p95 ms':>8}"]
    for kind in ORDER:
        if kind in stats:
            s = stats[kind]
            lines.append(f"{kind:<32} {s['n']:>4} {s['median']:>10.1f} {s['p95']:>8.1f}")
    lines.append("ratios (median / p95):")
    pairs = [(kind, "read (key)") for kind in ("read (session)", "password step (MFA)", "code step",
                                               "sign-in (MFA): password + code", "sign-in (no MFA)")]
    for kind, base in [*pairs, ("sign-in (MFA): password + code", "read (session)")]:
        s, b = stats[kind], stats[base]
        lines.append(f"  {kind + ' / ' + base:<50} {s['median'] / b['median']:>6.1f}x {s['p95'] / b['p95']:>6.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="30 s TOTP steps: each MFA user signs in once per round")
    parser.add_argument("--mfa-users", type=int, default=8)
    parser.add_argument("--support-users", type=int, default=8)
    parser.add_argument("--reads", type=int, default=200, help="reads of each kind (key, session)")
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    args = parser.parse_args(argv)
    if min(args.rounds, args.mfa_users, args.support_users, args.reads) < 1:
        parser.error("every count must be at least 1")
    with tempfile.TemporaryDirectory(prefix="sign-in-") as tmp:
        stack = LocalStack(Path(tmp) / "state")
        try:
            stack.start()
            report = measure(stack, args)
        except Exception:
            print(stack.log()[-3000:], file=sys.stderr)
            raise
        finally:
            stack.stop()
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
