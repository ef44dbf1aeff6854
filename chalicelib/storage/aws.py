"""Lazy, cached boto3 clients.

Created on first use, never at import: tests and the local runner start moto
first, and every client picks its endpoint from `AWS_ENDPOINT_URL` (or the
per-service `AWS_ENDPOINT_URL_<SERVICE>`, which wins) as botocore >= 1.31.58
resolves it natively; no endpoint is ever passed here, so the same code runs
against AWS, moto or a compatible cloud. PynamoDB's clients resolve the same
way (tests/unit/test_endpoints.py).
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.settings import settings

_clients: dict[str, Any] = {}
_lock = threading.Lock()
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=3, read_timeout=10)


def client(service: str) -> Any:
    with _lock:
        if service not in _clients:
            session: Any = boto3.session.Session()  # the stubs type client() per literal service name
            _clients[service] = session.client(service, region_name=settings.region, config=_CONFIG)
        return _clients[service]


def reset_clients() -> None:
    """Forget cached clients (tests switch between moto backends)."""
    with _lock:
        _clients.clear()
