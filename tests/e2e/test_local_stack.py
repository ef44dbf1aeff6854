"""The local stack a developer gets from `make run`, exercised over real HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

import requests

from tests.e2e.conftest import REPO, LocalStack

JOB_TIMEOUT = 60.0


def _assert_error_shape(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code
    assert error["message"] and error["details"] == []
    assert error["request_id"] and error["request_id"] == response.headers["X-Request-Id"]
    return str(error["request_id"])


def test_pos_key_authenticates(stack: LocalStack) -> None:
    pos = stack.key("pos")
    response = stack.get("/v1/whoami", pos["secret"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["role"] == "pos"
    assert body["tenant_id"] == pos["tenant_id"]
    assert response.headers["X-Request-Id"]


def test_every_example_key_authenticates(stack: LocalStack) -> None:
    roles = {key["role"] for key in stack.keys()}
    assert {"platform", "agency", "tenant_admin", "pos", "support"} <= roles
    tenants = {key["tenant_id"] for key in stack.keys() if key["tenant_id"]}
    assert {key["tenant_id"] for key in stack.keys() if key["role"] == "support"} == tenants, "one support key each"
    for key in stack.keys():
        response = stack.get("/v1/whoami", key["secret"])
        assert response.status_code == 200, (key["role"], key["owner"], response.text)
        assert response.json()["role"] == key["role"]


def test_missing_authorization_is_401_in_our_shape(stack: LocalStack) -> None:
    response = stack.get("/v1/whoami")
    _assert_error_shape(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # A fresh request id per request, as API Gateway's $context.requestId.
    assert _assert_error_shape(stack.get("/v1/whoami"), 401, "unauthorized") != response.json()["error"]["request_id"]


def test_unknown_route_is_404_in_our_shape(stack: LocalStack) -> None:
    _assert_error_shape(stack.get("/v1/no-such-route"), 404, "not_found")
    # With a key too: API Gateway answers unknown routes before any authorizer runs.
    _assert_error_shape(stack.get("/v1/no-such-route", stack.key("pos")["secret"]), 404, "not_found")
    _assert_error_shape(stack.request("POST", "/nothing/here", json={}), 404, "not_found")


def test_invalid_key_is_rejected_in_our_shape(stack: LocalStack) -> None:
    response = stack.get("/v1/whoami", "lp_pos_coffee-chain.aaaaaaaaaaaa.not-a-real-secret-at-all-000000000000000")
    assert response.status_code in (401, 403), response.text
    assert set(response.json()["error"]) == {"code", "message", "details", "request_id"}


def test_the_banner_prints_whole_lines_and_every_key(stack: LocalStack) -> None:
    log = stack.log()
    assert "Serving on" not in log, "chalice's own line, printed from the server thread, broke other lines"
    assert re.search(r"^SQS workers: ", log, re.MULTILINE), log[-3000:]
    lines = log.splitlines()
    for key in stack.keys():
        assert any(line.split()[-1:] == [key["secret"]] and line.split()[0] == key["role"] for line in lines if line)


def test_the_cli_finds_the_running_stack_whatever_the_shell_holds(stack: LocalStack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "STAGE"}
    env.update({"LOCAL_STATE_DIR": str(stack.state_dir), "AWS_PROFILE": "prod-admin", "AWS_ACCESS_KEY_ID": "AKIAREAL",
                "AWS_SECRET_ACCESS_KEY": "real", "AWS_DEFAULT_REGION": "us-west-2"})
    done = subprocess.run([sys.executable, "-m", "chalicelib.cli", "sweep"], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0].startswith(
        f"sweep: acting on the local stack (embedded AWS at http://127.0.0.1:{stack.moto_port}, stage local, process ")
    assert "coffee-chain" in done.stdout and "daily sweep for " in done.stdout


def test_deleting_a_tenant_runs_the_purge_job(stack: LocalStack) -> None:
    # The last example tenant, so the other tests (first tenant's keys) are unaffected.
    tenant_id = sorted({k["tenant_id"] for k in stack.keys() if k["tenant_id"]})[-1]
    tenant_key = stack.key("pos", tenant_id)
    agency = next(k for k in stack.keys() if k["role"] == "agency" and k["agency_id"] == tenant_key["agency_id"])
    path = f"/v1/agency/tenants/{tenant_id}"
    assert stack.get(path, agency["secret"]).status_code == 200

    response = stack.request("DELETE", path, agency["secret"], params={"confirm": tenant_id})
    assert response.status_code == 202, response.text

    deadline = time.monotonic() + JOB_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        status = stack.get(path, agency["secret"]).status_code
        if status == 404:
            break
        time.sleep(0.5)
    assert status == 404, f"tenant not purged within {JOB_TIMEOUT}s:\n{stack.log()[-3000:]}"
    # Its keys went with it.
    assert stack.get("/v1/whoami", tenant_key["secret"]).status_code == 401


def test_data_and_keys_survive_a_restart(make_stack: Callable[[str], LocalStack]) -> None:
    stack = make_stack("restart").start()
    keys_before = stack.keys()
    pos = stack.key("pos")
    assert stack.get("/v1/whoami", pos["secret"]).status_code == 200
    assert (stack.state_dir / "stack.json").exists(), "how the CLI finds the running stack"
    assert stack.stop() == 0, stack.log()[-3000:]
    assert not (stack.state_dir / "stack.json").exists(), "a stopped stack is no target"
    recording = stack.state_dir / "moto-recording.log"
    assert recording.stat().st_size > 0

    stack.start()
    assert "Restored local data" in stack.log()
    assert stack.keys() == keys_before, "a restart must not mint new keys for existing tenants"
    for key in keys_before:
        response = stack.get("/v1/whoami", key["secret"])
        assert response.status_code == 200, (key["role"], response.text)
    assert stack.stop() == 0


def test_a_corrupt_recording_is_set_aside_and_the_stack_starts_fresh(make_stack: Callable[[str], LocalStack]) -> None:
    stack = make_stack("corrupt")
    stack.state_dir.mkdir(parents=True)
    (stack.state_dir / "moto-recording.log").write_text('{"not": "a request"}\nthis is not json\n{}\n')
    (stack.state_dir / "keys.json").write_text('{"keys": [{"role": "pos", "secret": "lp_stale"}]}\n')
    stack.start()
    log = stack.log()
    assert "could not restore local data" in log
    assert list(stack.state_dir.glob("moto-recording.*.bak")), log[-3000:]
    assert list(stack.state_dir.glob("keys.*.bak"))
    assert all(k["secret"] != "lp_stale" for k in stack.keys())
    assert stack.get("/v1/whoami", stack.key("pos")["secret"]).status_code == 200
