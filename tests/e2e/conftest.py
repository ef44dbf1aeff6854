"""Run the real local stack (`python -m infra.local.run`) as a subprocess on free ports with its own state dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
# Variables the test process sets for in-process moto; the stack must choose its own.
_SCRUBBED = ("AWS_ENDPOINT_URL", "STAGE", "DIRECTORY_TABLE", "API_KEYS_TABLE", "AUDIT_TABLE", "JOBS_QUEUE",
             "REPORTS_BUCKET", "AWS_PROFILE", "AWS_SESSION_TOKEN")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStack:
    """One run of the local stack; `start()` waits until the API answers, `stop()` always ends the process."""

    state_dir: Path
    api_port: int = field(default_factory=free_port)
    moto_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"{self.state_dir.name}-run{self.runs}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> LocalStack:
        assert self.proc is None, "already running"
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(
            {
                "LOCAL_STATE_DIR": str(self.state_dir),
                "PORT": str(self.api_port),
                "MOTO_PORT": str(self.moto_port),
                "PYTHONUNBUFFERED": "1",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra.local.run"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"local stack exited with {self.proc.returncode}:\n{self.log()[-5000:]}")
            try:
                if requests.get(f"{self.url}/v1/openapi.json", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.stop()
        raise AssertionError(f"local stack not ready after {READY_TIMEOUT}s:\n{self.log()[-5000:]}")

    def stop(self) -> int | None:
        """SIGTERM (what Ctrl-C does), then SIGKILL if it hangs; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
                raise AssertionError(f"local stack ignored SIGTERM for {STOP_TIMEOUT}s:\n{self.log()[-3000:]}") from None
        return proc.returncode

    def keys(self) -> list[dict[str, Any]]:
        return list(json.loads((self.state_dir / "keys.json").read_text())["keys"])

    def key(self, role: str, tenant_id: str | None = None) -> dict[str, Any]:
        matches = [k for k in self.keys() if k["role"] == role and (tenant_id is None or k["tenant_id"] == tenant_id)]
        assert matches, f"no {role} key for {tenant_id or 'any tenant'} in keys.json"
        return sorted(matches, key=lambda k: (k.get("tenant_id") or "", k["key_id"]))[0]

    def get(self, path: str, secret: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, secret, **kwargs)

    def request(self, method: str, path: str, secret: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[[str], LocalStack]]:
    """Factory of stacks in tmp dirs; every process started is stopped at teardown, even on failure."""
    stacks: list[LocalStack] = []

    def make(name: str = "state") -> LocalStack:
        stack = LocalStack(tmp_path / name)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One running stack shared by a module's read-mostly tests."""
    running = LocalStack(tmp_path_factory.mktemp("stack") / "state")
    try:
        yield running.start()
    finally:
        running.stop()
